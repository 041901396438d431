//! Base backups of a cluster with a tablespace (`public.ledger` lives in `ts1`, at `/tmp/ts1`
//! on the source): in tar format (`<oid>.tar` beside `base.tar`, and `tablespace_map` naming
//! the source's place) and in plain format (`--tablespace-mapping` into a folder of its own, and
//! a link in `pg_tblspc`), and a chain of PostgreSQL 17's incremental backups of it (a full one in
//! tar format, an incremental one on it in plain format). Each recovers with the tablespace inside
//! the staging folder (an in-place tablespace: `pg_tablespace_location` is `pg_tblspc/<oid>`),
//! never at the place the backup names; a tablespace missing from the backup (or from a member of
//! the chain), or a plain one the scenario does not name, fails in verify.

use std::path::{Path, PathBuf};

use pgdrill::outcome::{Phase, PhaseStatus};

use crate::source_server::{SourceServer, wait_archived};
use crate::util::Scratch;

/// pg_basebackup as the source's superuser, its WAL streamed, a checkpoint at once.
const BASEBACKUP: [&str; 7] = ["pg_basebackup", "-U", "postgres", "-X", "stream", "-c", "fast"];

/// Rows written before each backup of the chain: (batch, rows).
const CHAIN_BATCHES: [(&str, i64); 2] = [("full", 30), ("incr", 20)];

/// Makes tablespace `ts1` at `/tmp/ts1` on the source and moves the ledger into it.
fn with_tablespace(server: &SourceServer) {
    server.exec(&["mkdir", "-p", "/tmp/ts1"]);
    server.psql_in("postgres", "CREATE TABLESPACE ts1 LOCATION '/tmp/ts1'").unwrap();
    server.psql("ALTER TABLE public.ledger SET TABLESPACE ts1").unwrap();
}

struct Source {
    server: SourceServer,
    target_time: String,
    before: i64,
    /// The tablespace's OID, as its tar and its link in pg_tblspc are named.
    oid: String,
}

impl Source {
    fn folder(&self, name: &str) -> PathBuf {
        self.server.dir.path().join(name)
    }

    fn make() -> Self {
        let image = pgdrill::scenario::project_image(17);
        let server = SourceServer::for_basebackup("tablespace", &image, &["backup", "plain", "plain-ts"]);
        with_tablespace(&server);
        server.exec(&[&BASEBACKUP[..], &["-D", "/backup", "-F", "t", "-z"]].concat());
        server
            .exec(&[&BASEBACKUP[..], &["-D", "/plain", "-F", "p", "--tablespace-mapping=/tmp/ts1=/plain-ts"]].concat());
        Self::around_target(server)
    }

    /// A chain of incremental backups (`summarize_wal` on): `chain/full` in tar format with the
    /// tablespace's `<oid>.tar.gz`, then `chain/incr` on it in plain format, its tablespace
    /// mapped into `chain-ts/incr`; the rows of each batch of [`CHAIN_BATCHES`] before each.
    fn make_chain() -> Self {
        let image = pgdrill::scenario::project_image(17);
        let folders = ["chain", "chain-ts"];
        let server = SourceServer::for_basebackup_with("tablespace-chain", &image, &folders, &["summarize_wal=on"]);
        with_tablespace(&server);
        for (i, (batch, rows)) in CHAIN_BATCHES.into_iter().enumerate() {
            let first = 100_000 * (i + 1);
            let sql = format!(
                "INSERT INTO public.ledger (id, batch) SELECT {first} + g, '{batch}' FROM generate_series(1, {rows}) g"
            );
            server.psql(&sql).unwrap();
            let member = match i {
                0 => vec!["-D", "/chain/full", "-F", "t", "-z"],
                _ => vec![
                    "-D",
                    "/chain/incr",
                    "-F",
                    "p",
                    "--incremental=/chain/full/backup_manifest",
                    "--tablespace-mapping=/tmp/ts1=/chain-ts/incr",
                ],
            };
            server.exec(&[&BASEBACKUP[..], &member].concat());
        }
        Self::around_target(server)
    }

    /// The rows before and after the target time, archived; the tablespace's OID.
    fn around_target(server: SourceServer) -> Self {
        let before = 40;
        let around = server.write_around_target(before, 25);
        wait_archived(&server.dir.path().join("archive"), &around.last_segment);
        let oid = server
            .psql_in("postgres", "SELECT oid FROM pg_tablespace WHERE spcname = 'ts1'")
            .unwrap()
            .trim()
            .to_owned();
        Source { server, target_time: around.target_time, before, oid }
    }
}

/// A scenario recovering `backup` to the target time, `extra` in `[source]` and `checks` after
/// the common ones.
fn scenario(scratch: &Scratch, source: &Source, backup: &Path, (extra, checks): (&str, &str)) -> PathBuf {
    scratch.scenario(
        &format!("tablespace-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n{extra}\n\n[target]\ndatabase = \"books\"\n\n\
             [recovery]\ntarget_time = \"{}\"\n\n\
             [[checks.point_in_time]]\npresent = \"SELECT count(*) = {} FROM public.ledger WHERE batch = 'before'\"\n\
             absent = \"SELECT EXISTS (SELECT 1 FROM public.ledger WHERE batch = 'after')\"\n\n\
             [[checks.sql]]\nname = \"the tablespace is in the data directory\"\n\
             query = \"SELECT pg_catalog.pg_tablespace_location(oid) FROM pg_catalog.pg_tablespace WHERE spcname = 'ts1'\"\n\
             expect_rows = [[\"pg_tblspc/{}\"]]\n\n[checks.amcheck]\n\n{checks}",
            backup.display(),
            source.folder("archive").display(),
            source.target_time,
            source.before,
            source.oid,
        ),
    )
}

#[test]
fn a_base_backup_with_a_tablespace_recovers_it_inside_the_staging_folder() {
    let source = Source::make();
    let scratch = Scratch::new();
    let oid = &source.oid;
    assert!(
        source.folder("backup").join(format!("{oid}.tar.gz")).is_file(),
        "pg_basebackup wrote the tablespace's tar"
    );

    // Tar format: the tablespace's tar unpacked into pg_tblspc/16384 itself.
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("backup"), ("", "")));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    drill.assert_reports_and_no_leftovers();

    // On the pod: the staged data directory, its tablespace in place, copied onto the data
    // volume; the server beside pgdrill's container finds it in pg_tblspc.
    let on_pod = scenario(&scratch, &source, &source.folder("backup"), ("", ""));
    scratch.pod_drill_passes(&on_pod, source.server.dir.path());

    // Plain format: the link in pg_tblspc is copied from the folder the scenario names.
    let mapped = format!("tablespaces = {{ {oid} = \"{}\" }}", source.folder("plain-ts").display());
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("plain"), (&mapped, "")));
    assert_eq!(drill.code, Some(0), "{drill:?}");

    // The plain backup without the scenario naming its tablespace: the link is refused.
    let drill = scratch.drill(&scenario(&scratch, &source, &source.folder("plain"), ("", "")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("holds a link `pg_tblspc/{oid}`")), "{error}");
    assert!(error.contains("`[source] tablespaces`"), "{error}");

    // The tar backup without its tablespace's tar: pg_verifybackup names what is missing.
    let lost = scratch.path("without-tablespace");
    std::fs::create_dir(&lost).unwrap();
    for file in ["base.tar.gz", "pg_wal.tar.gz", "backup_manifest"] {
        std::fs::copy(source.folder("backup").join(file), lost.join(file)).unwrap();
    }
    let drill = scratch.drill(&scenario(&scratch, &source, &lost, ("", "")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("pg_verifybackup") && error.contains(&format!("pg_tblspc/{oid}/")), "{error}");
}

#[test]
fn an_incremental_chain_with_a_tablespace_recovers_it_inside_the_staging_folder() {
    let source = Source::make_chain();
    let scratch = Scratch::new();
    let oid = &source.oid;
    let chain = source.folder("chain");
    assert!(chain.join(format!("full/{oid}.tar.gz")).is_file(), "the full backup's tablespace tar");
    let mut rows = String::new();
    for (batch, count) in CHAIN_BATCHES {
        rows.push_str(&format!(
            "[[checks.sql]]\nname = \"{batch}\"\nquery = \"SELECT count(*) FROM public.ledger WHERE batch = '{batch}'\"\nexpect = {count}\n\n"
        ));
    }

    // The tar member's tablespace unpacked in place, the plain one's copied in place from the
    // folder the scenario names for it; pg_combinebackup combines them in place.
    let named = format!("tablespaces = {{ \"incr/{oid}\" = \"{}\" }}", source.folder("chain-ts/incr").display());
    let drill = scratch.drill(&scenario(&scratch, &source, &chain, (&named, &rows)));
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("chain of 2 backups: full `full` (base backup (tar, `base.tar.gz`)) then incremental `incr` (base backup (plain))"), "{verify}");
    assert!(verify.contains("pg_combinebackup --copy-file-range (the members unpacked here)"), "{verify}");
    drill.assert_reports_and_no_leftovers();

    // The plain member's tablespace not named: its link is refused, naming the member.
    let drill = scratch.drill(&scenario(&scratch, &source, &chain, ("", "")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains(&format!("`incr` of the chain: the base backup holds a link `pg_tblspc/{oid}`")), "{error}");
    assert!(error.contains("a chain member's as `\"<member>/<oid>\" = \"<folder>\"`"), "{error}");

    // Named as a single backup's: the scenario is told to name the member.
    let bare = format!("tablespaces = {{ {oid} = \"{}\" }}", source.folder("chain-ts/incr").display());
    let drill = scratch.drill(&scenario(&scratch, &source, &chain, (&bare, "")));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("is a chain of incremental backups") && error.contains("\"<member>/<oid>\""), "{error}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "{drill:?}");

    // The full backup without its tablespace's tar: pg_verifybackup names the member and what
    // it misses, before the chain is combined.
    let lost = scratch.path("chain-without-tablespace");
    let out = std::process::Command::new("cp").arg("-a").arg(&chain).arg(&lost).output().unwrap();
    assert!(out.status.success(), "{}", crate::source_server::text(&out));
    std::fs::remove_file(lost.join(format!("full/{oid}.tar.gz"))).unwrap();
    let drill = scratch.drill(&scenario(&scratch, &source, &lost, (&named, "")));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("pg_verifybackup: `full` of the chain does not match its manifest"), "{error}");
    assert!(error.contains(&format!("pg_tblspc/{oid}/")), "{error}");
}
